"""Articles are cut into passages by heading, each knowing its article and where it sits."""

from __future__ import annotations

import textwrap
from pathlib import Path

from knowledge.articles import Article
from knowledge.chunking import MAX_CHUNK_CHARS, chunk_article


def article(body: str, title: str = "Set up MFA on a new phone") -> Article:
    return Article(id="mfa", title=title, body=textwrap.dedent(body).strip(), path=Path("mfa.md"))


MFA_BODY = """
    # Set up MFA on a new phone

    You need your old phone or a recovery code.

    ## Steps
    Install Microsoft Authenticator first.

    ### On an iPhone
    Open the App Store and install it.

    ### On Android ###
    Open Google Play and install it.

    ## Who to contact
    Post in #it-help.
"""


def test_sections_become_passages_with_their_heading_path() -> None:
    chunks = chunk_article(article(MFA_BODY))

    assert [(chunk.heading, chunk.text) for chunk in chunks] == [
        ("", "You need your old phone or a recovery code."),
        ("Steps", "Install Microsoft Authenticator first."),
        ("Steps › On an iPhone", "Open the App Store and install it."),
        ("Steps › On Android", "Open Google Play and install it."),
        ("Who to contact", "Post in #it-help."),
    ]
    assert {(chunk.article_id, chunk.article_title) for chunk in chunks} == {
        ("mfa", "Set up MFA on a new phone")
    }


def test_the_embedded_text_carries_the_title_and_headings() -> None:
    iphone = chunk_article(article(MFA_BODY))[2]

    assert iphone.embedding_text == (
        "Set up MFA on a new phone — Steps › On an iPhone\nOpen the App Store and install it."
    )
    intro = chunk_article(article(MFA_BODY))[0]
    assert intro.embedding_text.startswith("Set up MFA on a new phone\n")


def test_hash_lines_inside_a_code_block_are_not_headings() -> None:
    body = """
        ## Flush the DNS cache
        Open a terminal and run:

        ```bash
        # flush the cache
        sudo dscacheutil -flushcache
        ## and restart the resolver
        sudo killall -HUP mDNSResponder
        ```

        Then try the site again.

        ## Still broken?
        Post in #it-help.
    """

    chunks = chunk_article(article(body, title="DNS"))

    assert [chunk.heading for chunk in chunks] == ["Flush the DNS cache", "Still broken?"]
    assert "# flush the cache" in chunks[0].text
    assert "## and restart the resolver" in chunks[0].text
    assert chunks[0].text.endswith("Then try the site again.")


def test_a_long_section_is_split_into_passages_under_the_size_limit() -> None:
    paragraphs = [f"Paragraph {n}: " + " ".join(["word"] * 60) for n in range(12)]
    body = "## Troubleshooting\n\n" + "\n\n".join(paragraphs)

    chunks = chunk_article(article(body, title="Long"))

    assert len(chunks) > 1
    assert all(len(chunk.text) <= MAX_CHUNK_CHARS for chunk in chunks)
    assert {chunk.heading for chunk in chunks} == {"Troubleshooting"}
    joined = "\n\n".join(chunk.text for chunk in chunks)
    assert joined == "\n\n".join(paragraphs)  # nothing lost, nothing reordered


def test_a_short_section_stays_whole() -> None:
    chunks = chunk_article(article("## Steps\n\nOne.\n\nTwo.\n\nThree.", title="Short"))

    assert [chunk.text for chunk in chunks] == ["One.\n\nTwo.\n\nThree."]


def test_an_article_of_headings_only_is_still_findable_by_its_title() -> None:
    chunks = chunk_article(article("# Guest Wi-Fi\n\n## Coming soon", title="Guest Wi-Fi"))

    assert len(chunks) == 1
    assert chunks[0].text == "Guest Wi-Fi"
    assert chunks[0].embedding_text.startswith("Guest Wi-Fi")


def test_a_hashtag_without_a_space_is_text() -> None:
    chunks = chunk_article(article("#it-help is the channel to ask in.", title="Help"))

    assert [(chunk.heading, chunk.text) for chunk in chunks] == [
        ("", "#it-help is the channel to ask in.")
    ]


def test_a_tilde_fenced_block_keeps_its_hash_lines() -> None:
    body = """
        ## Check the proxy
        ~~~sh
        # show the proxy settings
        env | grep -i proxy
        ~~~
        ## Next
        Post in #it-help.
    """

    chunks = chunk_article(article(body, title="Proxy"))

    assert [chunk.heading for chunk in chunks] == ["Check the proxy", "Next"]
    assert "# show the proxy settings" in chunks[0].text


def test_a_backtick_line_inside_a_tilde_fence_does_not_close_it() -> None:
    body = "## A\n~~~\n```\n# not a heading\n~~~\n## B\ntext"

    chunks = chunk_article(article(body, title="Fences"))

    assert [chunk.heading for chunk in chunks] == ["A", "B"]
    assert "# not a heading" in chunks[0].text


def test_one_paragraph_longer_than_a_passage_is_cut_between_sentences() -> None:
    sentences = [f"Sentence number {n} explains one more step of the setup." for n in range(40)]
    body = "## Setup\n\n" + " ".join(sentences)

    chunks = chunk_article(article(body, title="Long paragraph"))

    assert len(chunks) > 1
    assert all(len(chunk.text) <= MAX_CHUNK_CHARS for chunk in chunks)
    assert all(chunk.text.endswith(".") for chunk in chunks)
    assert " ".join(chunk.text for chunk in chunks) == " ".join(sentences)


def test_text_without_any_break_is_still_cut_under_the_limit() -> None:
    chunks = chunk_article(article("x" * (3 * MAX_CHUNK_CHARS + 5), title="Blob"))

    assert [len(chunk.text) for chunk in chunks] == [MAX_CHUNK_CHARS] * 3 + [5]


def test_a_list_longer_than_a_passage_is_cut_between_its_items() -> None:
    steps = [
        f"{n}. Open **Settings > Network**, choose the VPN profile number {n} and click "
        f"**Connect**. Wait: it can take a minute."
        for n in range(1, 11)
    ]
    body = "## Steps\n\n" + "\n".join(steps)

    chunks = chunk_article(article(body, title="VPN"))

    assert len(chunks) > 1
    assert all(len(chunk.text) <= MAX_CHUNK_CHARS for chunk in chunks)
    # Every item whole, on its own line, in order: no "4." left dangling at the end of
    # one passage with its text in the next.
    lines = [line for chunk in chunks for line in chunk.text.split("\n")]
    assert lines == steps


def test_a_list_item_longer_than_a_passage_is_cut_between_its_sentences() -> None:
    item = "4. " + " ".join(f"Sentence {n} of a very long step." for n in range(30))
    chunks = chunk_article(article(f"## Steps\n\n1. Short step.\n{item}", title="Long step"))

    assert all(len(chunk.text) <= MAX_CHUNK_CHARS for chunk in chunks)
    assert chunks[0].text.startswith("1. Short step.\n4. Sentence 0")  # the marker stays
    assert " ".join(chunk.text.replace("\n", " ") for chunk in chunks) == f"1. Short step. {item}"


def test_each_passage_knows_what_stood_before_it_at_the_cut() -> None:
    paragraph = " ".join(f"Sentence {n} of a long paragraph." for n in range(20))
    steps = "\n".join(f"{n}. Click the button marked step number {n} and wait." for n in range(12))
    body = f"## Notes\n\n{paragraph}\n\n{steps}\n\n## Who to contact\nPost in #it-help."

    chunks = chunk_article(article(body, title="Layout"))
    notes = [chunk for chunk in chunks if chunk.heading == "Notes"]

    # Read back with its joins, the section is its text again, layout and all.
    assert notes[0].joined_by == ""
    assert "".join(chunk.joined_by + chunk.text for chunk in notes) == f"{paragraph}\n\n{steps}"
    assert {chunk.joined_by for chunk in notes[1:]} == {" ", "\n\n", "\n"}
    assert chunks[-1].heading == "Who to contact" and chunks[-1].joined_by == ""

"""With the real model, an employee's own wording finds the right article first."""

from __future__ import annotations

import pytest

from knowledge.articles import load_articles
from knowledge.index import KnowledgeIndex, build_index
from nlu.embedding import SentenceEmbedder
from tests.knowledge.kb import write_article

ARTICLES = {
    "password-reset": (
        "Reset a forgotten password",
        """
        If you forgot your password or it has expired, you can choose a new one yourself.

        ## Steps
        1. Go to the self-service account page and click **Forgot password**.
        2. Confirm it is you with the code sent to your phone.
        3. Choose a new password of at least 14 characters.

        ## Locked out
        After five wrong attempts your account is locked for 15 minutes.
        """,
    ),
    "vpn-connect": (
        "Connect to the company VPN",
        """
        The VPN lets you reach internal systems such as the intranet and file shares
        when you work from home or travel.

        ## Steps
        1. Open the VPN client from the system tray.
        2. Enter the portal address and click **Connect**.
        3. Approve the sign-in prompt on your phone.

        ## Common errors
        "Gateway unreachable" means your network blocks the VPN: try a phone hotspot.
        """,
    ),
    "printer-setup": (
        "Add and use an office printer",
        """
        Every floor has a shared printer. Print jobs are released at the printer with
        your badge.

        ## Add the printer
        Open Settings > Printers and add the printer named after your floor.

        ## Paper jams and empty toner
        Open the front tray, remove stuck paper, and report empty toner cartridges.
        """,
    ),
    "office-wifi": (
        "Join the office Wi-Fi",
        """
        Use the Corp network in the office; guests use the Guest network.

        ## Steps
        Choose **Corp** in the list of wireless networks and sign in with your work account.

        ## No connection
        Forget the network, turn wireless off and on, and join again.
        """,
    ),
}

QUESTIONS = {
    "I can't remember my login and I'm stuck at the sign-in screen": "password-reset",
    "how do I get to internal sites when working remotely?": "vpn-connect",
    "my document won't come out of the machine on the 3rd floor": "printer-setup",
    "my laptop can't get online in the meeting room": "office-wifi",
}


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory, embedder: SentenceEmbedder) -> KnowledgeIndex:
    kb = tmp_path_factory.mktemp("kb")
    for article_id, (title, body) in ARTICLES.items():
        write_article(kb, f"{article_id}.md", article_id, title, body)
    return build_index(load_articles(kb), embedder, "all-MiniLM-L6-v2")


@pytest.mark.parametrize(("question", "article_id"), QUESTIONS.items())
def test_a_paraphrased_question_finds_the_right_article_first(
    index: KnowledgeIndex, embedder: SentenceEmbedder, question: str, article_id: str
) -> None:
    hits = index.search(embedder.embed([question])[0], limit=4)

    assert hits[0].article_id == article_id
    assert hits[0].score > hits[1].score


def test_the_passage_shown_is_the_section_that_answers(
    index: KnowledgeIndex, embedder: SentenceEmbedder
) -> None:
    hit = index.search(embedder.embed(["paper is stuck inside the copier"])[0])[0]

    assert (hit.article_id, hit.heading) == ("printer-setup", "Paper jams and empty toner")
    assert hit.passage.startswith("Open the front tray")

"""A knowledge editor keeps the folder of articles, and tier0 keeps every version of it."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.knowledge.editors import Editor, article_source, editor_script, write_kb


@pytest.fixture
def editor(home: Path, tmp_path: Path) -> Editor:
    return Editor(home=home, kb=write_kb(tmp_path / "kb"))


def history_of(editor: Editor, article_id: str) -> list[dict[str, object]]:
    result = editor.kb_command("history", article_id, "--json")
    assert result.exit_code == 0, result.output
    parsed: list[dict[str, object]] = json.loads(result.stdout)
    return parsed


def test_sync_records_added_changed_and_retired_articles_with_who_and_when(
    editor: Editor,
) -> None:
    first = editor.kb_command("sync", "--author", "alice")
    assert first.exit_code == 0, first.output
    assert "4 added, 0 changed, 0 retired" in first.stdout
    assert "Index: 3 published articles" in first.stdout  # the draft answers nothing

    vpn = editor.file("vpn-connect")
    vpn.write_text(vpn.read_text().replace("GlobalProtect", "the GlobalProtect app"))
    editor.file("printer-jam").unlink()
    second = editor.kb_command("sync", "--author", "bob")
    assert second.exit_code == 0, second.output
    assert "0 added, 1 changed, 1 retired, 2 unchanged" in second.stdout

    vpn_history = history_of(editor, "vpn-connect")
    assert [(v["version"], v["change"], v["author"]) for v in vpn_history] == [
        (1, "added", "alice"),
        (2, "changed", "bob"),
    ]
    assert [(v["change"], v["status"]) for v in history_of(editor, "printer-jam")] == [
        ("added", "published"),
        ("retired", "retired"),
    ]

    again = editor.kb_command("sync")
    assert "0 added, 0 changed, 0 retired, 3 unchanged" in again.stdout


def test_a_retired_file_that_comes_back_is_restored(editor: Editor) -> None:
    editor.kb_command("sync")
    text = editor.file("printer-jam").read_text()
    editor.file("printer-jam").unlink()
    editor.kb_command("sync")
    editor.file("printer-jam").write_text(text)

    back = editor.kb_command("sync")

    assert "1 restored" in back.stdout
    assert [v["change"] for v in history_of(editor, "printer-jam")] == [
        "added",
        "retired",
        "restored",
    ]


def test_diff_shows_what_the_last_edit_changed_and_any_two_versions(editor: Editor) -> None:
    editor.kb_command("sync")
    vpn = editor.file("vpn-connect")
    vpn.write_text(vpn.read_text().replace("review_by: 2099-01-01", "review_by: 2099-06-01"))
    editor.kb_command("sync")
    vpn.write_text(vpn.read_text().replace("Approve the MFA", "Accept the MFA"))
    editor.kb_command("sync")

    last = editor.kb_command("diff", "vpn-connect")
    assert last.exit_code == 0, last.output
    assert "-your Northwind account. Approve the MFA" in last.stdout
    assert "+your Northwind account. Accept the MFA" in last.stdout
    assert "review_by" not in last.stdout

    first_to_second = editor.kb_command("diff", "vpn-connect", "1", "2")
    assert "-review_by: 2099-01-01" in first_to_second.stdout
    assert "+review_by: 2099-06-01" in first_to_second.stdout

    missing = editor.kb_command("diff", "vpn-connect", "1", "9")
    assert missing.exit_code == 2
    assert "has no version 9 (it has versions 1 to 3)" in missing.output


def test_list_and_show_tell_the_editor_what_is_stored_and_what_is_not_synced(
    editor: Editor,
) -> None:
    editor.kb_command("sync")
    vpn = editor.file("vpn-connect")
    vpn.write_text(vpn.read_text().replace("GlobalProtect", "GP"))

    listed = editor.kb_command("list", "--json")
    assert listed.exit_code == 0, listed.output
    rows = {row["id"]: row for row in json.loads(listed.stdout)}
    assert rows["expense-tool"]["status"] == "draft"
    assert rows["vpn-connect"] == {
        "id": "vpn-connect",
        "title": "Connect to the VPN from home",
        "status": "published",
        "owner": "U0NETWORK1",
        "review_by": "2099-01-01",
        "version": 1,
        "synced": False,
    }
    assert rows["printer-jam"]["synced"] is True

    drafts = editor.kb_command("list", "--status", "Draft", "--json")
    assert [row["id"] for row in json.loads(drafts.stdout)] == ["expense-tool"]
    misspelt = editor.kb_command("list", "--status", "publised")
    assert misspelt.exit_code == 2
    assert "--status must be one of draft, published, retired" in misspelt.output

    shown = editor.kb_command("show", "vpn-connect", "--raw")
    assert shown.exit_code == 0
    assert shown.stdout == article_source("vpn-connect")
    pretty = editor.kb_command("show", "vpn-connect")
    assert "Connect to the VPN from home" in pretty.stdout and "v1" in pretty.stdout

    unknown = editor.kb_command("show", "no-such-article")
    assert unknown.exit_code == 2
    assert "no article 'no-such-article' in the store" in unknown.output


def test_edit_opens_the_editor_saves_back_to_the_folder_and_syncs(
    editor: Editor, tmp_path: Path
) -> None:
    editor.kb_command("sync")
    new_text = article_source("printer-jam").replace("tray 2", "tray 3")

    edited = editor.kb_command(
        "edit", "printer-jam", "--author", "carol", EDITOR=editor_script(tmp_path, new_text)
    )

    assert edited.exit_code == 0, edited.output
    assert "tray 3" in editor.file("printer-jam").read_text()
    assert "1 changed" in edited.stdout
    assert history_of(editor, "printer-jam")[-1]["author"] == "carol"


@pytest.mark.parametrize(
    ("breakage", "problem"),
    [
        (("status: published", "status: live"), "status 'live' is not one of"),
        (("review_by: 2099-01-01", "review_by: next spring"), "is not a date"),
        (("owner: it-workplace@northwind.example", "owner: the print team"), "owner"),
        (("id: printer-jam", "id: printer-paper-jam"), "ids are permanent"),
        (("title: Clear a paper jam", "title: [Clear a paper jam"), "not valid YAML"),
    ],
    ids=["bad status", "bad date", "bad owner", "changed id", "broken YAML"],
)
def test_a_broken_edit_is_refused_and_the_article_left_as_it_was(
    editor: Editor, tmp_path: Path, breakage: tuple[str, str], problem: str
) -> None:
    editor.kb_command("sync")
    before = editor.file("printer-jam").read_text()
    broken = article_source("printer-jam").replace(*breakage)

    result = editor.kb_command("edit", "printer-jam", EDITOR=editor_script(tmp_path, broken))

    assert result.exit_code == 2
    assert problem in result.output
    assert "nothing saved; your edited text is kept in" in result.output
    assert "Traceback" not in result.output
    assert editor.file("printer-jam").read_text() == before
    assert len(history_of(editor, "printer-jam")) == 1


def test_an_edit_left_unchanged_saves_nothing(editor: Editor, tmp_path: Path) -> None:
    editor.kb_command("sync")
    same = editor.file("printer-jam").read_text()

    result = editor.kb_command("edit", "printer-jam", EDITOR=editor_script(tmp_path, same))

    assert result.exit_code == 0
    assert "No changes to printer-jam" in result.stdout


def test_add_writes_a_new_article_from_the_editor_or_a_file(editor: Editor, tmp_path: Path) -> None:
    written = (
        "---\nid: guest-wifi\ntitle: Wi-Fi for visitors\nowner: U0NETWORK1\n"
        "status: published\n---\n\n# Wi-Fi for visitors\n\nReception prints a voucher "
        "for the NW-Guest network, valid for one day.\n"
    )
    added = editor.kb_command(
        "add",
        "--id",
        "guest-wifi",
        "--title",
        "Wi-Fi for visitors",
        EDITOR=editor_script(tmp_path, written),
    )
    assert added.exit_code == 0, added.output
    assert editor.file("guest-wifi").read_text() == written
    assert history_of(editor, "guest-wifi")[0]["change"] == "added"

    finished = tmp_path / "ready.md"
    finished.write_text(written.replace("guest-wifi", "visitor-wifi"))
    from_file = editor.kb_command("add", str(finished))
    assert from_file.exit_code == 0, from_file.output
    assert editor.file("visitor-wifi").exists()

    duplicate = editor.kb_command("add", str(finished))
    assert duplicate.exit_code == 2
    assert "an article with id 'visitor-wifi' already exists" in duplicate.output


def test_add_without_an_id_or_editor_says_what_is_needed(editor: Editor) -> None:
    no_id = editor.kb_command("add", "--title", "Something")
    assert no_id.exit_code == 2
    assert "give --id and --title" in no_id.output


def test_retire_takes_an_article_out_of_the_answers_and_keeps_its_history(
    editor: Editor,
) -> None:
    editor.kb_command("sync")

    retired = editor.kb_command("retire", "printer-jam", "--author", "dave")

    assert retired.exit_code == 0, retired.output
    assert "status: retired" in editor.file("printer-jam").read_text()
    assert "Index: 2 published articles" in retired.stdout
    assert [(v["change"], v["author"]) for v in history_of(editor, "printer-jam")] == [
        ("added", editor_default_author()),
        ("retired", "dave"),
    ]
    again = editor.kb_command("retire", "printer-jam")
    assert "already retired" in again.stdout


def editor_default_author() -> str:
    import getpass

    return getpass.getuser()


def test_sync_of_a_malformed_folder_names_the_file_and_records_nothing(
    editor: Editor,
) -> None:
    (editor.kb / "broken.md").write_text("---\nid: broken\ntitle: Broken\n---\n\n   \n")
    result = editor.kb_command("sync")
    assert result.exit_code == 2
    assert str(editor.kb / "broken.md") in result.output
    assert "has no body" in result.output

    (editor.kb / "broken.md").write_text(article_source("vpn-connect"))
    duplicate = editor.kb_command("sync")
    assert duplicate.exit_code == 2
    assert "duplicate id 'vpn-connect'" in duplicate.output

    (editor.kb / "broken.md").unlink()
    assert editor.kb_command("history", "vpn-connect").exit_code == 2  # nothing was stored


def test_editing_the_bundled_sample_is_refused(editor: Editor) -> None:
    result = editor.kb_command("retire", "vpn-connect", TIER0_KB_DIR=None)

    assert result.exit_code == 2
    assert "bundled sample knowledge base is read-only" in result.output


def git(folder: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=folder, check=True, capture_output=True)


def test_in_a_git_folder_a_version_is_credited_to_the_commit_author(editor: Editor) -> None:
    git(editor.kb, "init", "-q")
    git(editor.kb, "add", ".")
    git(
        editor.kb,
        "-c",
        "user.name=Alice Ng",
        "-c",
        "user.email=alice@northwind.example",
        "commit",
        "-qm",
        "articles",
    )
    editor.kb_command("sync")
    vpn = editor.file("vpn-connect")
    vpn.write_text(vpn.read_text().replace("GlobalProtect", "GP"))  # not committed yet

    editor.kb_command("sync")

    assert [v["author"] for v in history_of(editor, "vpn-connect")] == [
        "Alice Ng <alice@northwind.example>",
        editor_default_author(),
    ]
    assert history_of(editor, "printer-jam")[0]["author"] == "Alice Ng <alice@northwind.example>"

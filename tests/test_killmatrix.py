"""harness/reports/killmatrix.py: which mutant counts as killed, and the tables."""

from harness.reports import killmatrix
from harness.tools import build


def case(cid, outcome, rules=("U-EXTRA-1",)):
    return {"id": cid, "outcome": outcome, "rules": list(rules)}


def run(name, *cases, rc=1):
    return name, rc, {"cases": list(cases)}


def test_a_failed_or_errored_case_kills_a_mutant():
    table = killmatrix.build([
        run("extra-dropped", case("a", "failed"), case("b", "passed")),
        run("handler-crash", case("c", "error", ["U-CB-1"])),
    ])
    assert table["survivors"] == []
    assert table["mutants"]["extra-dropped"]["killed_by"] == 1
    assert table["rules"] == {"U-EXTRA-1": ["extra-dropped"], "U-CB-1": ["handler-crash"]}


def test_expected_deviations_and_skips_kill_nothing():
    # A case the baseline expects to fail anyway says nothing about the mutant.
    table = killmatrix.build([run("cork-noop", case("a", "expected-deviation"), case("b", "skipped"), rc=0)])
    assert table["survivors"] == ["cork-noop"]
    assert "SURVIVED" in killmatrix.text(table)
    assert "**SURVIVED**" in killmatrix.markdown(table)


def test_a_run_without_results_is_a_survivor_that_says_so():
    table = killmatrix.build([("stop-hangs", 3, None)])
    assert table["survivors"] == ["stop-hangs"]
    assert "did not finish: exit 3" in killmatrix.text(table)


def test_rules_are_listed_in_catalogue_order():
    table = killmatrix.build([run("m", case("a", "failed", ["U-ACT-10", "U-ACT-2", "U-API-1"]))])
    md = killmatrix.markdown(table)
    assert md.index("| U-ACT-2 |") < md.index("| U-ACT-10 |") < md.index("| U-API-1 |")


def test_a_kill_by_nearly_every_case_is_weak():
    broke_all = [case(f"c{i}", "failed", ["U-ACT-1"]) for i in range(19)] + [case("p", "passed")]
    one_rule = [case("k", "failed", ["U-SOCK-4"])] + [case(f"p{i}", "passed") for i in range(19)]
    table = killmatrix.build([run("create-fails", *broke_all), run("tls-stall-after-eagain", *one_rule)])
    assert table["mutants"]["create-fails"]["weak"] is True
    assert table["mutants"]["tls-stall-after-eagain"]["weak"] is False
    assert table["mutants"]["tls-stall-after-eagain"]["rules"] == ["U-SOCK-4"]
    assert "WEAK" in killmatrix.text(table).splitlines()[0]


def test_a_mutant_killed_only_outside_its_own_rule_fails_the_matrix():
    own = {"stream-corrupt-large": ["U-SOCK-1"], "extra-dropped": ["U-EXTRA-1"]}
    table = killmatrix.build([run("stream-corrupt-large", case("a", "failed", ["U-WS-3"])),
                              run("extra-dropped", case("b", "failed"), case("c", "failed", ["U-EXTRA-2"]))], own)
    assert table["survivors"] == []
    assert table["astray"] == ["stream-corrupt-large"]
    assert table["mutants"]["extra-dropped"]["by_own_rule"] is True
    assert not killmatrix.passed(table)
    assert "NOT by its own rule U-SOCK-1" in killmatrix.text(table)
    assert "| `stream-corrupt-large` | ? | U-SOCK-1 |" in killmatrix.markdown(table)


def test_own_rules_unknown_judge_only_the_kill():
    table = killmatrix.build([run("m", case("a", "failed", ["U-ACT-1"]))])
    assert table["mutants"]["m"]["by_own_rule"] is None
    assert killmatrix.passed(table)


def client_case(cid, outcome, client):
    return {**case(cid, outcome, ["U-WS-6"]), "client": client}


def test_a_real_client_that_can_see_a_mutant_must_catch_it():
    # extra-dropped: only a client that sends its first frame in the
    # handshake's write (wsproto: early) can see it; the others are blind.
    extra = run("extra-dropped", client_case("a", "failed", "wsproto"), client_case("b", "passed", "chromium"))
    # ws-close-code-wrong: every client sees it; node-ws did not catch it.
    close = run("ws-close-code-wrong", client_case("c", "failed", "chromium"), client_case("d", "passed", "node-ws"))
    table = killmatrix.build([extra, close], sees={"extra-dropped": "early", "ws-close-code-wrong": ""})
    assert table["mutants"]["extra-dropped"]["clients"] == {"wsproto": "killed", "chromium": "blind"}
    assert table["mutants"]["ws-close-code-wrong"]["clients"] == {"chromium": "killed", "node-ws": "missed"}
    assert table["missed_by_clients"] == {"ws-close-code-wrong": ["node-ws"]}
    assert table["survivors"] == [] and not killmatrix.passed(table)
    assert "node-ws MISSED it" in killmatrix.text(table)
    md = killmatrix.markdown(table)
    assert "| mutant | chromium | node-ws | wsproto |" in md  # the clients in the registry's order
    assert "| `extra-dropped` | cannot see it |  | killed |" in md
    assert "| `ws-close-code-wrong` | killed | **MISSED** |  |" in md
    assert "1 missed by a real client that can see it" in md


def test_without_interop_cases_no_client_is_judged():
    table = killmatrix.build([run("ws-accept-wrong", case("a", "failed", ["U-WS-1"]))], sees={"ws-accept-wrong": ""})
    assert table["mutants"]["ws-accept-wrong"]["clients"] is None and killmatrix.passed(table)


def test_the_matrix_says_what_each_mutant_breaks():
    table = killmatrix.build([run("extra-dropped", case("a", "failed")), run("cork-noop", case("b", "passed"))],
                             breaks={"extra-dropped": "extra_in lost", "cork-noop": "CORK_ON|OFF do nothing"})
    assert table["mutants"]["extra-dropped"]["breaks"] == "extra_in lost"
    md = killmatrix.markdown(table)
    assert "| `extra-dropped` | extra_in lost | ? | 1 of 1 |" in md
    assert "| `cork-noop` | CORK_ON\\|OFF do nothing |" in md  # a | in the text does not split the row


def test_mutant_names_reads_rules_sanitize_and_what_it_breaks(tmp_path):
    binary = tmp_path / "refserver"
    binary.write_text("#!/bin/sh\nprintf 'stop-leaks U-STOP-1 sanitize\\tMHD_stop_daemon leaks memory\\n"
                      "extra-dropped U-EXTRA-1,U-WS-6:early\\textra_in lost\\n'\n")
    binary.chmod(0o755)
    names = build.mutant_names(binary, "")
    assert names == {
        "stop-leaks": build.Mutant(["U-STOP-1"], True, None, "MHD_stop_daemon leaks memory"),
        "extra-dropped": build.Mutant(["U-EXTRA-1", "U-WS-6"], False, "early", "extra_in lost"),
    }

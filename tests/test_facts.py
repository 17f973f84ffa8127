"""harness/reports/facts.py: what the measure rules measured, each value
with where it was seen, for the application developer."""

from harness import catalog, modes
from harness.reports import facts, html_report, results


def test_each_value_with_where_it_was_seen():
    every = {f"test_sock[{m.name}-{t}]": ({"nonblocking": True, "family": 2} if t == "plain" else {"family": 1})
             for m in modes.MODES for t in modes.TRANSPORTS}
    data = {"rules": {"U-SOCK-2": {"kind": "measure", "observed": every},
                      "U-CB-5": {"kind": "measure", "observed": {"test_thread[tpc-plain]": "own",
                                                                 "test_thread[epoll-plain]": "same",
                                                                 "test_thread[epoll-https]": "same"}},
                      "U-ACT-1": {"kind": "promise", "observed": {"x": 1}}}}
    found = dict(facts.facts(data))
    assert found["U-SOCK-2"] == [('{"family": 2, "nonblocking": true}', "every mode over plain"),
                                 ('{"family": 1}', "every mode over https")]
    assert found["U-CB-5"] == [("same", "epoll over plain; epoll over https"), ("own", "tpc over plain")]
    assert "U-ACT-1" not in found  # a promise is judged, not listed
    cat = {r.id: r for r in catalog.load().values()}
    md = "\n".join(facts.markdown(data, cat))
    assert "## Facts about this MHD" in md and '| `{"family": 1}` | every mode over https |' in md
    page = "\n".join(facts.html(data, cat, html_report._esc))
    assert '<tr data-fact="U-CB-5"><td class=rid rowspan="2">U-CB-5</td>' in page


def test_the_reports_carry_the_facts():
    data = results.build([], {r.id: r for r in catalog.load().values()}, {"version": "1"}, 1.0, ("plain",), None)
    assert "Facts about this MHD" not in results.summary_markdown(data, {})  # nothing measured, no section

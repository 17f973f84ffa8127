"""junit.xml: a known deviation counts apart from the cases that did not run."""

import xml.etree.ElementTree as ET

from harness.reports import junit

WRITTEN = """<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="upgrade-conformance MHD 0.9.75" errors="0"
failures="0" skipped="2" tests="3"><properties><property name="gate" value="PASSED" /></properties>
<testcase classname="cases.test_act" name="t0[epoll-plain]"><properties><property name="rules" value="U-ACT-1" />
</properties></testcase>
<testcase classname="cases.test_act" name="t1[ext-select-plain]"><properties><property name="rules" value="U-ACT-6" />
</properties><skipped type="pytest.xfail" message="baseline 0.9.75: U-ACT-6 never ends. Workaround: call MHD_run" />
</testcase>
<testcase classname="cases.test_cb" name="t2[tpc-plain]"><skipped type="pytest.skip" message="not here" /></testcase>
</testsuite></testsuites>"""


def test_a_known_deviation_is_a_passed_case_that_says_so(tmp_path):
    path = tmp_path / "junit.xml"
    path.write_text(WRITTEN)
    assert junit.known_apart(path) == 1
    suite = ET.parse(path).getroot().find("testsuite")
    assert suite.get("skipped") == "1" and suite.get("tests") == "3"  # the real skip alone
    assert {p.get("name"): p.get("value") for p in suite.find("properties")}["known_deviations"] == "1"
    known, skipped = suite.findall("testcase")[1:]
    assert known.find("skipped") is None and known.find("failure") is None
    props = {p.get("name"): p.get("value") for p in known.find("properties")}
    assert props["rules"] == "U-ACT-6" and "Workaround: call MHD_run" in props["known_deviation"]
    assert known.find("system-out").text.startswith("known deviation, as the baseline says: baseline 0.9.75")
    assert skipped.find("skipped").get("type") == "pytest.skip"
    assert skipped.find("properties") is None  # untouched

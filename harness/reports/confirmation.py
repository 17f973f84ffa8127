"""The words for what --confirm-failures' reruns said of each case
(harness/tools/confirm.py runs them), for the console, summary.md and
report.html."""


def confirmation_lines(confirmation):
    """What the --confirm-failures reruns said of each case, in words."""
    out = []
    for case_id, t in (confirmation or {}).get("cases", {}).items():
        if t["reruns"] == 0:
            verdict = "no rerun finished"
        elif t["failed"] == t["reruns"]:
            verdict = f"failed again in all {t['reruns']} reruns"
        elif t["failed"] == 0:
            verdict = f"behaved in all {t['reruns']} reruns: it came once"
        else:
            verdict = f"failed again in {t['failed']} of {t['reruns']} reruns"
        out.append(f"{case_id.split('::')[-1]}: {verdict}")
    return out

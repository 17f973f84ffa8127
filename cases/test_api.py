"""API: the documented API shape, checked by compiling small programs
against the microhttpd.h under test (rule catalogue, API)."""

import subprocess

import pytest

from harness.deadlines import scaled

# The prototypes as the manual (section "Creating a response for protocol
# upgrades") writes them; each program compiles only if the header agrees.
PROGRAMS = {
    "U-API-1": """
/* @deftypefun enum MHD_Result MHD_create_response_for_upgrade
 *   (MHD_UpgradeHandler upgrade_handler, void *upgrade_handler_cls) */
enum MHD_Result (*manual) (MHD_UpgradeHandler, void *) = &MHD_create_response_for_upgrade;
""",
    "U-API-2": """
/* @deftypefn {Function Pointer} void {*MHD_UpgradeHandler} (void *cls,
 *   struct MHD_Connection *connection, const char *extra_in,
 *   size_t extra_in_size, MHD_socket sock, struct MHD_UpgradeResponseHandle *urh) */
static void manual_handler (void *cls, struct MHD_Connection *connection, const char *extra_in,
                            size_t extra_in_size, MHD_socket sock,
                            struct MHD_UpgradeResponseHandle *urh)
{ (void) cls; (void) connection; (void) extra_in; (void) extra_in_size; (void) sock; (void) urh; }
MHD_UpgradeHandler manual = &manual_handler;
""",
    "U-API-3": """
/* @deftypefun enum MHD_Result MHD_upgrade_action
 *   (struct MHD_UpgradeResponseHandle *urh, enum MHD_UpgradeAction action, ...) */
enum MHD_Result (*manual) (struct MHD_UpgradeResponseHandle *, enum MHD_UpgradeAction, ...)
  = &MHD_upgrade_action;
enum MHD_UpgradeAction actions[] = {
  MHD_UPGRADE_ACTION_CLOSE, MHD_UPGRADE_ACTION_CORK_ON, MHD_UPGRADE_ACTION_CORK_OFF
};
""",
}


def compile_against_header(state, source, tmp_path):
    include = state.build_value("MHD_INCLUDEDIR")
    path = tmp_path / "api.c"
    path.write_text("#include <stddef.h>\n#include <stdint.h>\n#include <stdarg.h>\n"
                    "#include <sys/socket.h>\n#include <microhttpd.h>\n" + source)
    cmd = ["cc", "-std=c11", "-Wall", "-Wextra", "-Werror", "-c", str(path), "-o", str(tmp_path / "api.o")]
    if include:
        cmd[1:1] = ["-I", include]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=scaled(60))


@pytest.mark.parametrize("rule", [pytest.param(r, marks=pytest.mark.rule(r), id=r) for r in PROGRAMS])
def test_documented_prototype_compiles(request, rule, tmp_path):
    state = request.config.conformance
    proc = compile_against_header(state, PROGRAMS[rule], tmp_path)
    errors = [line.replace(str(tmp_path) + "/", "") for line in proc.stderr.splitlines() if "error" in line]
    assert proc.returncode == 0, (
        f"the manual's prototype does not compile against microhttpd.h "
        f"({state.mhd['version']}): " + " | ".join(errors[:3]))


@pytest.mark.rule("U-API-4")
def test_feature_upgrade_reported(request):
    assert request.config.conformance.mhd["feature_upgrade"], (
        "MHD_is_feature_supported(MHD_FEATURE_UPGRADE) says no on a build that upgrades")

"""Resume many run folders in one process and print one JSON line per folder (exit status and
what azdsl wrote to stderr); tests/test_fuzz_cli.py runs it as a subprocess, so that a crash
(a segfault from an edited checkpoint) shows as the process's own exit status and names the
folder it was resuming."""

from __future__ import annotations

import contextlib
import io
import json
import sys
import traceback

from azdsl.cli import main


def resume(folder: str) -> dict[str, object]:
    err, out = io.StringIO(), io.StringIO()
    print(json.dumps({"started": folder}), flush=True)
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
            status: object = main(["resume", folder, "--quiet"])
    except BaseException:  # anything but azdsl's own error is what the fuzz test looks for
        status = "exception"
        err.write(traceback.format_exc())
    return {"folder": folder, "status": status, "stderr": err.getvalue()}


if __name__ == "__main__":
    for name in sys.argv[1:]:
        print(json.dumps(resume(name)), flush=True)

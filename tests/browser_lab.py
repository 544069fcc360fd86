"""A throw-away JupyterLab server for driving the canvas in headless Chromium (the browser test, bench_canvas)."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"]
TOKEN = "doodle-test-token"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_server(url: str, proc: subprocess.Popen, log: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"jupyter lab exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"jupyter lab did not answer within {timeout} s:\n{log.read_text()[-3000:]}")


FRONTENDS = {  # name -> (python -m module, its app class, the path that opens a notebook)
    "lab": ("jupyterlab", "LabApp", "lab/tree"),
    "notebook": ("notebook", "JupyterNotebookApp", "notebooks"),  # Notebook 7
    "classic": ("notebook", "NotebookApp", "notebooks"),  # notebook 6.5 with ipywidgets 7: Colab's stack
}


def write_notebook(root: Path, name: str, cells) -> Path:
    """A notebook of code cells (a string is one cell) in the server's folder."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(c) for c in ([cells] if isinstance(cells, str) else cells)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, root / name)
    return root / name


@contextlib.contextmanager
def jupyter_server(tmp_path: Path, frontend: str = "lab", python: str = sys.executable, checkout: bool | None = None):
    """JupyterLab, Notebook 7 or the classic notebook on a free port, with its own folders.

    `python` is the environment's interpreter (the Colab-like test runs its own); `checkout`: its
    kernel imports this checkout's library (the default for this environment), not its own install.
    Its settings and config folders are its own: Notebook 7 writes settings (a theme) to the config
    folder's lab/user-settings whatever --user_settings_dir says, and a developer's must stay untouched.
    """
    module, app, _ = FRONTENDS[frontend]
    root = tmp_path / "notebooks"
    root.mkdir()
    settings = tmp_path / "settings"
    # Without this file JupyterLab asks "get notified about Jupyter news?" over the notebook.
    notification = settings / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    notification.parent.mkdir(parents=True)
    notification.write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    port = _free_port()
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"), "PIX2PIX_FAST": "1",
           "JUPYTER_CONFIG_DIR": str(tmp_path / "config"), "JUPYTERLAB_SETTINGS_DIR": str(settings),
           "JUPYTERLAB_WORKSPACES_DIR": str(tmp_path / "workspaces")}
    if checkout if checkout is not None else python == sys.executable:  # else the environment's own install
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    else:
        env.pop("PYTHONPATH", None)
    cmd = [python, "-m", module, "--no-browser", "--ip", "127.0.0.1", "--port", str(port)]
    if frontend == "classic":
        cmd += [f"--NotebookApp.token={TOKEN}", f"--NotebookApp.notebook_dir={root}"]
    else:
        cmd += [f"--ServerApp.token={TOKEN}", f"--ServerApp.root_dir={root}",
                f"--{app}.user_settings_dir={settings}", f"--{app}.workspaces_dir={tmp_path / 'workspaces'}",
                "--expose-app-in-browser", "--ServerApp.open_browser=False"]
    if hasattr(os, "getuid") and os.getuid() == 0:
        cmd.append("--allow-root")  # jupyter refuses to run as root without it
    log = tmp_path / "jupyter.log"
    with open(log, "w") as log_file:
        proc = subprocess.Popen(cmd, stdout=log_file, stderr=subprocess.STDOUT, env=env, cwd=root)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_for_server(f"{base}/api/status?token={TOKEN}", proc, log)
        yield {"base": base, "root": root, "log": log, "frontend": frontend, "settings": settings}
    finally:
        try:  # shuts the kernels down too
            request = urllib.request.Request(f"{base}/api/shutdown?token={TOKEN}", method="POST")
            urllib.request.urlopen(request, timeout=5).close()
        except OSError:
            pass
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()


@contextlib.contextmanager
def jupyterlab(tmp_path: Path, notebook_code: str, notebook: str = "canvas_test.ipynb"):
    """JupyterLab with one notebook of `notebook_code` (bench_canvas.py)."""
    with jupyter_server(tmp_path, "lab") as server:
        write_notebook(server["root"], notebook, notebook_code)
        yield server


def open_notebook(page, base: str, notebook: str = "canvas_test.ipynb", frontend: str = "lab") -> None:
    """Open `notebook` and run all its cells once the kernel is up."""
    page.goto(f"{base}/{FRONTENDS[frontend][2]}/{notebook}?reset&token={TOKEN}")
    if frontend == "classic":
        page.wait_for_function("() => window.Jupyter && Jupyter.notebook && Jupyter.notebook.kernel"
                               " && Jupyter.notebook.kernel.is_connected()", timeout=120_000)
    else:
        page.wait_for_function("() => window.jupyterapp && window.jupyterapp.shell.currentWidget"
                               " && window.jupyterapp.shell.currentWidget.sessionContext", timeout=120_000)
    run_all(page)


def run_all(page) -> None:
    page.evaluate("""async () => {
        if (window.Jupyter && Jupyter.notebook) { Jupyter.notebook.execute_all_cells(); return; }  // classic
        const panel = window.jupyterapp.shell.currentWidget;
        await panel.sessionContext.ready;
        await window.jupyterapp.commands.execute('notebook:run-all-cells');
    }""")


def run_in_kernel(page, code: str) -> None:
    """Execute `code` in the notebook's kernel, as a later cell would (any of the three front ends).

    Raises with the kernel's error when the code fails.
    """
    reply = page.evaluate("""(code) => new Promise((done) => {
        const said = (content) => done({ status: content.status, error: `${content.ename}: ${content.evalue}` });
        if (window.Jupyter && Jupyter.notebook) {  // classic
            Jupyter.notebook.kernel.execute(code, { shell: { reply: (msg) => said(msg.content) } });
            return;
        }
        const kernel = window.jupyterapp.shell.currentWidget.sessionContext.session.kernel;
        kernel.requestExecute({ code }).done.then((msg) => said(msg.content));
    })""", code)
    if reply["status"] != "ok":
        raise RuntimeError(f"the kernel could not run {code!r}: {reply['error']}")


def draw(page, x0: float, y0: float, strokes) -> None:
    """Mouse strokes on the canvas whose top-left corner is at (x0, y0) on the page."""
    for stroke in strokes:
        page.mouse.move(x0 + stroke[0][0], y0 + stroke[0][1])
        page.mouse.down()
        for x, y in stroke[1:]:
            page.mouse.move(x0 + x, y0 + y, steps=6)
        page.mouse.up()

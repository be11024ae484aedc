"""The HTML report of `modelfp identify --report` in a real browser: headless Chromium (Debian's
package, installed here when absent and the tests run as root) loads the one file with no network,
every thumbnail decodes and is shown enlarged, the captions and the summary tell the images of a
folder of folders apart, and the screenshot is not blank. Skipped, with the reason printed, where
Chromium is absent and cannot be installed."""
import os
import shutil
import subprocess
import time

import numpy as np
import pytest
from PIL import Image

from modelfp import denoise, extractor as ex
from modelfp.cli import main

pytestmark = pytest.mark.usefixtures("one_thread")

SIZE = 16
BROWSER_SECONDS = 60
# run in the page after it loaded: how many <img> decoded to a picture (naturalWidth > 0), and the
# first one's size in the file and on the page
COUNT_LOADED = ("<script>addEventListener('load', () => {const b = document.body, i = document.images[0]; "
                "b.setAttribute('data-loaded', [...document.images].filter(i => i.complete && i.naturalWidth > 0)"
                ".length); b.setAttribute('data-natural', i.naturalWidth); "
                "b.setAttribute('data-shown', i.clientWidth)})</script>")


def _chromium() -> str:
    """The Chromium executable; installed with apt-get when absent and running as root, else skip."""
    for name in ("chromium", "chromium-browser"):
        if shutil.which(name):
            return shutil.which(name)
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        reason = "Chromium is not installed and cannot be installed here (apt-get as root is needed)"
        print(reason)
        pytest.skip(reason)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    t0 = time.monotonic()
    install = ["apt-get", "install", "-y", "-qq", "chromium"]
    done = subprocess.run(install, env=env, capture_output=True, text=True)
    if done.returncode != 0:        # a machine that never ran apt-get update has no package lists
        subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True, text=True)
        done = subprocess.run(install, env=env, capture_output=True, text=True)
    exe = shutil.which("chromium")
    if done.returncode != 0 or not exe:
        reason = f"Chromium could not be installed: {(done.stderr or done.stdout).strip().splitlines()[-1:]}"
        print(reason)
        pytest.skip(reason)
    print(f"installed Chromium with apt-get in {time.monotonic() - t0:.0f} s")
    return exe


def _browse(exe: str, page, *options) -> subprocess.CompletedProcess:
    # --no-sandbox: Chromium refuses to run as root with its sandbox; the page is our own file
    return subprocess.run([exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                           "--no-first-run", "--hide-scrollbars", *options, page.as_uri()],
                          capture_output=True, text=True, timeout=BROWSER_SECONDS)


def test_chromium_shows_every_thumbnail_of_the_report(tmp_path):
    exe = _chromium()
    model = ex.build(denoise.init_model(depth=3, features=4, seed=0),
                     ex.ExtractorConfig(backbone="none", transform="log1p", image_size=SIZE), ["a", "b"], seed=0)
    model.threshold = model.openset_threshold = 0.5
    extractor = tmp_path / "model.pt"
    ex.save(model, extractor)
    rng = np.random.default_rng(0)

    def save(path, trace):
        path.parent.mkdir(parents=True, exist_ok=True)
        y, x = np.mgrid[:32, :32]
        img = rng.integers(40, 160, (32, 32, 3)) + (trace(x, y) * 80)[..., None]
        Image.fromarray(img.clip(0, 255).astype(np.uint8)).save(path)

    traces = {"stripes": lambda x, y: x % 2, "checker": lambda x, y: (x + y) % 2}
    for name, trace in traces.items():
        for i in range(3):
            save(tmp_path / "known" / name / f"{i}.png", trace)
        for i in range(4):                             # a folder of folders, the same file names in each
            save(tmp_path / "queries" / name / f"{i}.png", trace)
    (tmp_path / "queries" / "broken.png").write_bytes(b"not a png")
    gallery = str(tmp_path / "g.gallery")
    common = ["--extractor", str(extractor), "--gallery", gallery]
    assert main(["gallery", "add", "--from-folders", str(tmp_path / "known"), *common]) == 0
    report = tmp_path / "report.html"
    assert main(["identify", str(tmp_path / "queries"), *common, "--report", str(report)]) == 1
    expected = 8                                       # the answered queries; the broken file has none

    probe = tmp_path / "probe.html"                    # the report plus a line that counts decoded images
    probe.write_text(report.read_text().replace("</body>", COUNT_LOADED + "</body>"))
    dom = _browse(exe, probe, "--dump-dom", "--virtual-time-budget=3000")
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert dom.stdout.count("<img") == expected
    assert f'data-loaded="{expected}"' in dom.stdout   # each data-URI thumbnail decoded in the browser
    assert dom.stdout.count("<circle") == expected and "Could not be used: 1" in dom.stdout
    assert 'data-natural="32"' in dom.stdout and 'data-shown="128"' in dom.stdout   # 32 px shown at 128
    for name in traces:                                # captions: the path under the folder given
        assert all(f"<figcaption>{name}/{i}.png<br>" in dom.stdout for i in range(4))
    queries = tmp_path / "queries"                     # the summary: one row per sub-folder
    for folder, n in ((queries / "stripes", 4), (queries / "checker", 4), (queries, 1)):
        assert f"<tr><td>{folder}</td><td>{n}</td>" in dom.stdout, dom.stdout[:3000]

    shot = tmp_path / "shot.png"
    done = _browse(exe, report, f"--screenshot={shot}", "--window-size=1000,1800")
    assert done.returncode == 0 and shot.exists(), done.stderr[-2000:]
    pixels = np.asarray(Image.open(shot).convert("RGB")).reshape(-1, 3)
    colours = len(np.unique(pixels, axis=0))
    assert pixels.std() > 10 and colours > 500, colours    # text, the map and noisy thumbnails, not a blank page

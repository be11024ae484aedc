"""Zoo manifests (modelfp.manifest): what the jobs reading hundreds of checkpoints declare."""
import pytest

from modelfp import manifest


def _files(tmp_path, n=3):
    paths = []
    for i in range(n):
        p = tmp_path / f"A{i}" / "seed0.pt"
        p.parent.mkdir()
        p.write_bytes(bytes([i]) * (100 + i))
        paths.append(str(p))
    return paths


def test_manifest_lists_every_checkpoint_with_its_digest(tmp_path):
    paths = _files(tmp_path)
    out = tmp_path / "slices" / "K1.tsv"
    manifest.write(paths, out)
    listed = manifest.read([out])
    assert list(listed) == paths
    assert listed[paths[1]] == manifest.digest(paths[1]) != manifest.digest(paths[0])
    assert not list(out.parent.glob("*.tmp*"))        # written atomically, nothing left behind
    assert manifest.verified(paths[::-1], [out]) == paths[::-1]


def test_a_checkpoint_changed_after_its_manifest_is_refused(tmp_path):
    paths = _files(tmp_path)
    out = tmp_path / "m.tsv"
    manifest.write(paths, out)
    with open(paths[2], "ab") as f:
        f.write(b"x")
    with pytest.raises(ValueError, match=r"A2/seed0.pt: changed after its manifest"):
        manifest.verified(paths, [out])


def test_an_unlisted_checkpoint_and_a_foreign_file_are_named(tmp_path):
    paths = _files(tmp_path)
    out = tmp_path / "m.tsv"
    manifest.write(paths[:2], out)
    with pytest.raises(ValueError, match=r"A2/seed0.pt: not listed"):
        manifest.verified(paths, [out])
    bad = tmp_path / "bad.tsv"
    bad.write_text("hello\n")
    with pytest.raises(ValueError, match=r"bad.tsv: not a zoo manifest"):
        manifest.read([bad])

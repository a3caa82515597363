"""Installs in any order leave nothing behind that shadows npLSTM.

Numba caches compiled code beside a module unless told otherwise; for an
installed npLSTM that was site-packages/npLSTM/kernels/__pycache__, which
pip does not remove, and the folder left by `pip install .` and a run then
shadowed a later `pip install -e .` (kernels/cache.py)."""
import os
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path


ROOT = Path(__file__).resolve().parent.parent
USE = ("import numpy, npLSTM; from npLSTM.kernels import jit; "
       "assert jit.all_finite(numpy.ones(3)); npLSTM.Sequential; print(npLSTM.__file__)")


def environment(tmp_path):
    """The user's environment with a home of its own, and Numba's rule for
    where to cache (no NUMBA_CACHE_DIR)."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("NUMBA_CACHE_DIR", "XDG_CACHE_HOME", "PYTHONPATH")}
    env["HOME"] = str(tmp_path / "home")
    return env


def files(folder):
    return {p.relative_to(folder) for p in folder.rglob("*")
            if p.is_file() and p.suffix != ".pyc"}


def test_a_run_writes_nothing_into_the_installed_package(tmp_path):
    site = tmp_path / "site"
    shutil.copytree(ROOT / "npLSTM", site / "npLSTM",
                    ignore=shutil.ignore_patterns("__pycache__"))
    installed = files(site)
    left = site / "npLSTM" / "kernels" / "__pycache__" / "jit.all_finite-41.py311.nbi"
    left.parent.mkdir()
    left.write_bytes(b"what npLSTM 0.1.0 left")           # and earlier versions' leftovers go
    env = dict(environment(tmp_path), PYTHONPATH=str(site))
    done = subprocess.run([sys.executable, "-c", USE], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(site / "npLSTM" / "__init__.py")
    assert files(site) == installed
    assert list((tmp_path / "home" / ".cache" / "npLSTM").rglob("*.nbi"))


def test_installs_in_any_order_import_the_one_installed_last(tmp_path):
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source)
    shutil.copytree(ROOT / "npLSTM", source / "npLSTM",
                    ignore=shutil.ignore_patterns("__pycache__"))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    site = Path(subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()"
                                "['purelib'])"], capture_output=True, text=True,
                               check=True).stdout.strip())
    # numpy, numba, pip and setuptools come from the tests' own environment.
    (site / "tests_environment.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    env = environment(tmp_path)

    def pip_install(*args):
        done = subprocess.run([python, "-m", "pip", "install", "-q", "--no-deps",
                               "--no-build-isolation", *args, str(source)], env=env,
                              cwd=tmp_path, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr

    def imported():
        done = subprocess.run([python, "-c", USE], env=env, cwd=tmp_path,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        return Path(done.stdout.strip()).parent

    pip_install()
    assert imported() == site / "npLSTM"
    # An upgrade over an install that an earlier npLSTM left its cache in:
    left = site / "npLSTM" / "kernels" / "__pycache__" / "jit.all_finite-41.py311.nbi"
    left.write_bytes(b"what npLSTM 0.1.0 left")
    pyproject = source / "pyproject.toml"
    pyproject.write_text(re.sub(r'version = "[^"]+"', 'version = "99.0"', pyproject.read_text()))
    pip_install()
    assert imported() == site / "npLSTM"
    assert not list((site / "npLSTM").rglob("*.nb[ic]"))
    for editable in (True, False, True):
        pip_install(*(["-e"] if editable else []))
        assert imported() == (source / "npLSTM" if editable else site / "npLSTM")
    assert not (site / "npLSTM").exists()

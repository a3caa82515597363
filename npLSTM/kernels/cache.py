"""Where Numba keeps npLSTM's compiled kernels: in the user's cache folder,
never beside the installed modules.

Numba's rule for `cache=True` puts the compiled code in the `__pycache__`
folder next to the source file. For an installed package that folder is in
site-packages, where pip does not know the files: uninstalling npLSTM left
them behind, and the left-over `npLSTM/` folder was then imported as a
namespace package ahead of a later editable install (`pip install .`, a
run, then `pip install -e .` broke `import npLSTM`). So npLSTM's own
functions are cached in

    $NUMBA_CACHE_DIR/...       when set: Numba's own rule, which comes first
    ~/.cache/npLSTM/...        otherwise (the platform's user cache folder)
    $TMPDIR/npLSTM-cache-UID   when the user cache folder is not writable

each source folder in a subfolder of its own (named by a hash of its path,
as Numba names them), so a regular and an editable install never share
files. Numba checks a hash of the source file before it loads anything, so
an upgraded module is compiled anew. Other packages' functions keep Numba's
usual rules. Importing this module registers the rule; it must come before
the first kernel is defined (kernels/__init__.py imports it first).
"""
import os
import tempfile
from pathlib import Path

from numba.core import caching, config
from numba.misc.appdirs import AppDirs

PACKAGE = Path(__file__).resolve().parent.parent          # the npLSTM folder
KERNELS = Path(__file__).resolve().parent

# Numba 0.68 names its locators without the underscore its earlier versions had.
_UserWideLocator = getattr(caching, "UserWideCacheLocator", None) or \
    getattr(caching, "_UserWideCacheLocator")


def _roots():
    """The folders to keep the cache under, in order of preference."""
    yield AppDirs("npLSTM", appauthor=False).user_cache_dir
    yield os.path.join(tempfile.gettempdir(), f"npLSTM-cache-{os.getuid()}"
                       if hasattr(os, "getuid") else "npLSTM-cache")


def _folder_for(py_file):
    """The cache folder of one of npLSTM's source files: under the first
    root where it can be made and written to (None: nowhere)."""
    subpath = _UserWideLocator.get_suitable_cache_subpath(py_file)
    for root in _roots():
        folder = os.path.join(root, subpath)
        try:
            os.makedirs(folder, exist_ok=True)
            tempfile.TemporaryFile(dir=folder).close()
        except OSError:
            continue
        return folder
    return None


class PackageCacheLocator(_UserWideLocator):
    """Numba's cache locator for npLSTM's own source files (None for others)."""

    def __init__(self, py_func, py_file, folder):
        self._py_file = py_file
        self._lineno = py_func.__code__.co_firstlineno
        self._cache_path = folder

    @classmethod
    def from_function(cls, py_func, py_file):
        if not os.path.exists(py_file) or PACKAGE not in Path(py_file).resolve().parents:
            return None
        folder = _folder_for(py_file)
        return None if folder is None else cls(py_func, py_file, folder)


def kernel_cache_folder():
    """The folder where the compiled code of kernels/*.py is kept."""
    source = str(KERNELS / "jit.py")
    if config.CACHE_DIR:
        return Path(config.CACHE_DIR) / _UserWideLocator.get_suitable_cache_subpath(source)
    folder = _folder_for(source)
    return None if folder is None else Path(folder)


def kernels_compiled():
    """Whether this install of npLSTM has compiled kernels in its cache (a
    first run compiles them: seconds, once)."""
    folder = kernel_cache_folder()
    return folder is not None and folder.is_dir() and any(folder.glob("*.nbi"))


def remove_files_left_in_the_package():
    """Delete the compiled code earlier versions of npLSTM left in the
    package's own __pycache__ folders (see the module docstring); a
    read-only install is left as it is."""
    for stale in [*PACKAGE.glob("**/__pycache__/*.nbi"), *PACKAGE.glob("**/__pycache__/*.nbc")]:
        try:
            stale.unlink()
        except OSError:
            pass


def register():
    """Put npLSTM's rule right after Numba's NUMBA_CACHE_DIR rule (once)."""
    classes = caching.CacheImpl._locator_classes
    if PackageCacheLocator not in classes:
        classes.insert(1, PackageCacheLocator)


register()
remove_files_left_in_the_package()

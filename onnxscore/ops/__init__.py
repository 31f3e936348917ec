"""Cost rules, one module per op family; importing this package registers all of them."""
import importlib
import pkgutil

from onnxscore.ops.registry import all_rules, lookup  # noqa: F401

for _info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
    if _info.name != "registry":
        importlib.import_module(f"{__name__}.{_info.name}")

#!/usr/bin/env python3
"""Makes one library's view of include/: a folder holding, as symlinks, only
the headers that library may include, so that a wrong-way #include fails to
compile ("No such file or directory") instead of waiting for a reviewer.

  include_view.py VIEW_DIR INCLUDE_ROOT ITEM...

ITEM is an area ("json": all of include/hci_admission/json/) or one header
("kube/cluster_view.hpp"). VIEW_DIR/hci_admission/ is made anew each time.
"""
import os
import shutil
import sys


def main() -> int:
    view, root, items = sys.argv[1], os.path.abspath(sys.argv[2]), sys.argv[3:]
    top = os.path.join(view, "hci_admission")
    if os.path.lexists(top):
        shutil.rmtree(top)
    os.makedirs(top)
    for item in items:
        source = os.path.join(root, "hci_admission", item)
        if not os.path.exists(source):
            print(f"include_view.py: {source} does not exist", file=sys.stderr)
            return 1
        target = os.path.join(top, item)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        if os.path.lexists(target):
            print(f"include_view.py: {item} given twice", file=sys.stderr)
            return 1
        os.symlink(source, target)
    return 0


if __name__ == "__main__":
    sys.exit(main())

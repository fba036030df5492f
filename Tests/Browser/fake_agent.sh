#!/bin/sh
# A stand-in for an agent CLI (docs/executors.md): it reads its task, "edits" the README and
# reports the change as a patch, which becomes the Run's code_patch Artifact.
set -eu
echo "working on task $TOWER_TASK_ID: $TOWER_OBJECTIVE"
cat > "$TOWER_ARTIFACTS_DIR/changes.patch" <<'PATCH'
diff --git a/README.md b/README.md
--- a/README.md
+++ b/README.md
@@ -3,4 +3,5 @@
 ## Install
-Run setup.py install.
+Install with pip:
+    pip install example
 Then read the guide.
PATCH
echo '{"summary": "Rewrote the install steps", "decision_log": ["pip replaces setup.py"]}' > "$TOWER_RESULT_FILE"

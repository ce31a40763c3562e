# Sourced by scripts/check-release and scripts/check-trixie: `make_project DIR` writes the smoke
# project of issue 10's acceptance 2 into DIR: a `#!/usr/bin/env pivot` pipeline with a
# numpy+pandas stage (`frame.txt`: "<python version> 3") and a stage running
# `sys.executable -c "import numpy"` (`child.txt`: frame.txt, numpy's version, then the
# `PIVOT_LAUNCH_*`/`LD_*` variables it saw, `leaked: []`), and `test_stages.py`, which calls a
# stage function directly.
make_project() {
    local dir=$1
    mkdir -p "$dir"
    cat > "$dir/pipeline.py" <<'PY'
#!/usr/bin/env pivot
import os
import subprocess
import sys
from typing import Annotated

from pivot import loaders, outputs
from pivot.pipeline import Pipeline


def frame() -> Annotated[str, outputs.Out("frame.txt", loaders.Text())]:
    import numpy as np
    import pandas as pd

    df = pd.DataFrame({"x": np.arange(3)})
    return f"{sys.version.split()[0]} {int(df.x.sum())}\n"


def child(frame: Annotated[str, outputs.Dep("frame.txt", loaders.Text())]
          ) -> Annotated[str, outputs.Out("child.txt", loaders.Text())]:
    done = subprocess.run([sys.executable, "-c", "import numpy; print(numpy.__version__)"],
                          capture_output=True, text=True, check=True)
    # What the launcher passed to the core never reaches a stage.
    leaked = sorted(k for k in os.environ if k.startswith(("PIVOT_LAUNCH_", "LD_PRELOAD",
                                                             "LD_LIBRARY_PATH")))
    return frame + done.stdout + f"leaked: {leaked}\n"


pipeline = Pipeline("smoke")
pipeline.register(frame)
pipeline.register(child)
PY
    chmod +x "$dir/pipeline.py"
    cat > "$dir/test_stages.py" <<'PY'
import pipeline


def test_a_stage_function_is_a_plain_function():
    assert pipeline.frame().endswith(" 3\n")
PY
}

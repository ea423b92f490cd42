"""Run every benchmark in bench/ in turn and print their figures."""

import subprocess
import sys
from pathlib import Path

here = Path(__file__).resolve().parent
status = 0
for script in sorted(here.glob("bench_*.py")):
    print(f"== {script.name}", flush=True)
    status |= subprocess.run([sys.executable, str(script)], cwd=here).returncode
sys.exit(status)

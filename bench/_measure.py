"""Run a command as a whole process and report its wall time and peak resident memory.

Usage: python bench/_measure.py CMD ARGS...  ->  prints "<seconds> <peak_kib>" on the last line.
The child's peak RSS comes from getrusage(RUSAGE_CHILDREN) in this wrapper, which has no other children.
"""

import resource
import subprocess
import sys
import time

start = time.perf_counter()
proc = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
elapsed = time.perf_counter() - start
if proc.returncode != 0:
    sys.stderr.write(proc.stderr.decode(errors="replace"))
    sys.exit(proc.returncode)
print(f"{elapsed:.6f} {resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}")

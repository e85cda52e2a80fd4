"""A real single-node SLURM cluster on localhost, for the tests marked `slurm` (tests/test_slurm.py).

Debian's slurmctld, slurmd and munge, started by hand in a temp dir, with no systemd and no
cgroups: munged with its own key and socket, `ProctrackType=proctrack/linuxproc`,
`TaskPlugin=task/none`, `slurmd -N localhost`. The node has the machine's CPUs, half its memory
and 2 fake GPUs (gres): character devices like /dev/null, so SLURM hands out GPU indices and sets
CUDA_VISIBLE_DEVICES while torch finds no GPU. Every daemon is a child process, stopped by its
own PID; ports are free ones on 127.0.0.1.
"""

import os
import shutil
import subprocess
import time
from pathlib import Path

from tests.helpers.processes import free_port, stop

DAEMONS = ("munged", "slurmctld", "slurmd")
CLIENTS = ("sbatch", "srun", "sinfo", "scontrol", "scancel", "squeue")


def missing() -> str | None:
    """Why no cluster can start here (None if it can): a program not installed, or not root."""
    absent = [p for p in (*DAEMONS, *CLIENTS) if shutil.which(p) is None]
    if absent:
        packages = "slurmctld slurmd slurm-client munge"
        return f"SLURM is not installed ({', '.join(absent)} not found): apt-get install {packages}"
    if os.geteuid() != 0:
        return "the local SLURM cluster runs its daemons as root (SlurmUser=root)"
    return None


def slurm_conf(root: Path, cpus: int, memory_mb: int) -> str:
    ctld, slurmd = free_port(), free_port()
    return f"""ClusterName=litlab
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort={ctld}
SlurmdPort={slurmd}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={root}/munge.sock
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
SlurmctldLogFile={root}/slurmctld.log
SlurmdLogFile={root}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
GresTypes=gpu
ReturnToService=2
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
NodeName=localhost NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={memory_mb} Gres=gpu:2 State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
"""


class LocalCluster:
    """Start with `start()`, stop with `stop()`; `env` is what a SLURM client command needs."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.procs: list[subprocess.Popen] = []
        self.env = {**os.environ, "SLURM_CONF": str(root / "slurm.conf")}

    def start(self, timeout: float = 30) -> None:
        root = self.root
        root.mkdir(parents=True, exist_ok=True)
        root.chmod(0o755)  # munged wants its socket's dir reachable by all
        for d in ("state", "spool"):
            (root / d).mkdir()
        key = root / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o400)
        for i in range(2):  # fake GPUs: character devices 1:3, as /dev/null is
            os.mknod(root / f"gpu{i}", 0o666 | 0o020000, os.makedev(1, 3))
        (root / "gres.conf").write_text(f"NodeName=localhost Name=gpu File={root}/gpu[0-1]\n")
        memory_mb = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 2**20 // 2
        (root / "slurm.conf").write_text(slurm_conf(root, os.cpu_count() or 1, memory_mb))
        conf = str(root / "slurm.conf")
        files = [f"--{name}-file={root}/munged.{name}" for name in ("pid", "log", "seed")]
        self.launch("munged", "-F", "--force", f"--socket={root}/munge.sock", f"--key-file={key}", *files)
        self.wait_for(lambda: (root / "munge.sock").exists(), "munged's socket", timeout)
        self.launch("slurmctld", "-D", "-i", "-f", conf)
        self.launch("slurmd", "-D", "-N", "localhost", "-f", conf)
        self.wait_for(self.node_idle, "the node to be idle (sinfo)", timeout)

    def launch(self, *cmd: str) -> None:
        log = open(self.root / f"{cmd[0]}.out", "w")  # noqa: SIM115 - open as long as the daemon runs
        self.procs.append(subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=self.env))

    def node_idle(self) -> bool:
        out = subprocess.run(["sinfo", "-h", "-o", "%T"], env=self.env, capture_output=True, text=True, timeout=10)
        return out.stdout.strip() == "idle"

    def wait_for(self, ready, what: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            dead = [p.args[0] for p in self.procs if p.poll() is not None]
            if dead or time.monotonic() > deadline:
                logs = "\n".join(f"--- {p.name}\n{p.read_text()[-1500:]}" for p in self.root.glob("*.out"))
                raise RuntimeError(f"SLURM: no {what} after {timeout} s (exited: {dead})\n{logs}")
            time.sleep(0.2)

    def stop(self) -> None:
        # Jobs a failed test left behind first (scancel talks to this cluster only: SLURM_CONF).
        subprocess.run(["scancel", "--user=root"], env=self.env, capture_output=True, timeout=30)
        for proc in reversed(self.procs):  # slurmd, slurmctld, then munged: each by its own PID
            stop(proc)

#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""A one-node Slurm cluster on this machine, for the batch tests and for measurements.

Usage: local_slurm.py start DIR [--cpus N] [--gpus N] [--max-array-size N]
       local_slurm.py stop DIR

`start` writes DIR/slurm.conf and starts slurmctld and slurmd (Debian's slurmctld, slurmd and
slurm-client; tools/setup-debian.sh installs them) with everything in DIR: state, spool, pid and
log files (DIR/log). Authentication is off (auth/none, cred/none: only for a test machine), the
ports are free ones picked at start, the node is this machine at 127.0.0.1 with N CPUs (default:
all). It waits until the node is idle and prints `export SLURM_CONF=DIR/slurm.conf` for the client
commands (sbatch, squeue, scontrol). --gpus N gives the node N GPUs in GRES backed by character
devices made in DIR (mknod, same device as /dev/null; needs root): Slurm then allocates them and
sets CUDA_VISIBLE_DEVICES, GPU_DEVICE_ORDINAL and SLURM_JOB_GPUS in each task as on a GPU node,
but they are no GPUs. `stop` cancels every job, shuts the daemons down and waits until they have
exited (killing what is left by the pids in DIR).

Also a module: Cluster(DIR, ...).start() / .stop() / .env (tests/examples/test_batch.py).
"""
import argparse
import getpass
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time

DAEMONS = ("slurmctld", "slurmd")
NODE = "stnode"
START_TIMEOUT_S = 60


class SlurmError(Exception):
    pass


def missing_binaries():
    """The Slurm programs this needs that are not installed."""
    names = ["slurmctld", "slurmd", "sbatch", "squeue", "scontrol", "scancel", "sinfo"]
    path = os.environ.get("PATH", "") + ":/usr/sbin:/sbin"
    return [n for n in names if shutil.which(n, path=path) is None]


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cluster:
    def __init__(self, directory, cpus=None, gpus=0, max_array_size=1001):
        self.dir = os.path.abspath(directory)
        self.cpus = cpus or os.cpu_count() or 1
        self.gpus = gpus
        self.max_array_size = max_array_size
        self.conf = os.path.join(self.dir, "slurm.conf")
        self.env = dict(os.environ, SLURM_CONF=self.conf)
        self.env["PATH"] = self.env.get("PATH", "") + ":/usr/sbin:/sbin"

    def run(self, *cmd, check=True, timeout=60):
        p = subprocess.run(cmd, env=self.env, capture_output=True, text=True, timeout=timeout)
        if check and p.returncode != 0:
            raise SlurmError(f"{' '.join(cmd)}: exit status {p.returncode}: {p.stderr.strip()}")
        return p.stdout

    def pid_file(self, daemon):
        return os.path.join(self.dir, f"{daemon}.pid")

    def write_config(self):
        for d in ("state", "spool", "log"):
            os.makedirs(os.path.join(self.dir, d), exist_ok=True)
        user = getpass.getuser()
        gres_line = ""
        if self.gpus:
            # character devices named gpu0, gpu1, ...: Slurm takes the GPU numbers from the names
            for i in range(self.gpus):
                dev = os.path.join(self.dir, f"gpu{i}")
                if not os.path.exists(dev):
                    os.mknod(dev, 0o600 | stat.S_IFCHR, os.makedev(1, 3))
            with open(os.path.join(self.dir, "gres.conf"), "w") as f:
                f.write(f"NodeName={NODE} Name=gpu File={self.dir}/gpu[0-{self.gpus - 1}]\n")
            gres_line = f" Gres=gpu:{self.gpus}"
        d = self.dir
        conf = f"""# one-node test cluster written by tools/local_slurm.py
ClusterName=stlocal
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort={free_port()}
SlurmdPort={free_port()}
AuthType=auth/none
CredType=cred/none
SlurmUser={user}
SlurmdUser={user}
StateSaveLocation={d}/state
SlurmdSpoolDir={d}/spool
SlurmctldPidFile={self.pid_file("slurmctld")}
SlurmdPidFile={self.pid_file("slurmd")}
SlurmctldLogFile={d}/log/slurmctld.log
SlurmdLogFile={d}/log/slurmd.log
ProctrackType=proctrack/pgid
TaskPlugin=task/none
SwitchType=switch/none
MpiDefault=none
MailProg=/bin/true
ReturnToService=2
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
MaxArraySize={self.max_array_size}
MinJobAge=3600
{"GresTypes=gpu" if self.gpus else ""}
NodeName={NODE} NodeHostname=localhost NodeAddr=127.0.0.1 CPUs={self.cpus}{gres_line} State=UNKNOWN
PartitionName=local Nodes=ALL Default=YES MaxTime=INFINITE State=UP
"""
        with open(self.conf, "w") as f:
            f.write(conf)

    def start(self):
        """Writes the configuration, starts both daemons, waits until the node is idle."""
        missing = missing_binaries()
        if missing:
            raise SlurmError(f"Slurm is not installed ({', '.join(missing)} missing: apt-get "
                             "install slurmctld slurmd slurm-client)")
        self.write_config()
        self.run("slurmctld", "-f", self.conf, "-i")
        self.run("slurmd", "-f", self.conf, "-N", NODE)
        deadline = time.time() + START_TIMEOUT_S
        state = ""
        while time.time() < deadline:
            state = self.run("sinfo", "-h", "-n", NODE, "-o", "%T", check=False).strip()
            if state == "idle":
                return self
            time.sleep(0.5)
        raise SlurmError(f"the node did not become idle within {START_TIMEOUT_S} s (state "
                         f"{state!r}); see {self.dir}/log")

    def daemon_pids(self):
        """{daemon: pid} of the daemons running, from their pid files."""
        pids = {}
        for daemon in DAEMONS:
            try:
                with open(self.pid_file(daemon)) as f:
                    pid = int(f.read().strip())
            except (OSError, ValueError):
                continue
            if running(pid):
                pids[daemon] = pid
        return pids

    def stop(self):
        """Cancels every job and waits until they are gone (so that no job step is left waiting
        for the controller), shuts the daemons down, waits for them (kills them after 30 s)."""
        if not os.path.exists(self.conf):
            return
        pids = self.daemon_pids()  # the daemons remove their pid files while shutting down
        if "slurmctld" in pids:
            self.run("scancel", "--partition=local", check=False)
            deadline = time.time() + 60
            while time.time() < deadline and self.run("squeue", "-h", check=False).strip():
                time.sleep(0.5)
            self.run("scontrol", "shutdown", check=False)
        deadline = time.time() + 30
        while time.time() < deadline and any(running(p) for p in pids.values()):
            time.sleep(0.2)
        for daemon, pid in pids.items():
            if running(pid):
                print(f"local_slurm: {daemon} (pid {pid}) still running: killing it",
                      file=sys.stderr)
                os.kill(pid, signal.SIGKILL)


def running(pid):
    """Whether process `pid` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("action", choices=["start", "stop"])
    ap.add_argument("dir")
    ap.add_argument("--cpus", type=int, help="CPUs of the node (default: all)")
    ap.add_argument("--gpus", type=int, default=0, help="GPUs in GRES (fake devices; root)")
    ap.add_argument("--max-array-size", type=int, default=1001)
    args = ap.parse_args()
    cluster = Cluster(args.dir, args.cpus, args.gpus, args.max_array_size)
    try:
        if args.action == "start":
            cluster.start()
            print(f"export SLURM_CONF={cluster.conf}")
        else:
            cluster.stop()
    except (SlurmError, OSError, subprocess.TimeoutExpired) as e:
        print(f"local_slurm: {e}", file=sys.stderr)
        if args.action == "start":
            cluster.stop()
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

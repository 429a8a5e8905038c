#!/usr/bin/env python3
"""Runs a command whose wall clock a file can move while it runs, for tests: libfaketime
preloaded, its offset read from --offset-file ("+0", "+90s", "-90s"; re-read at most a second
late), its monotonic clock left alone. The command replaces this process (same pid), so signals
sent to it reach the command itself. Standard library only.

    python3 scripts/fakeclock.py --offset-file /tmp/w1.offset --shared tm_w1 -- taskmesh worker ...

libfaketime 0.9.10 without FAKETIME_SHARED (which the `faketime` wrapper sets) leaves a Swift
program's CommandLine.arguments empty, so this makes the named semaphore and shared memory the
wrapper would (`/NAME_sem`, `/NAME_shm`, kept for restarts; remove them from /dev/shm after).
"""
import argparse
import ctypes
import glob
import os
import sys


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--offset-file", required=True)
    parser.add_argument("--shared", required=True, help="the name of the semaphore and shared memory to use")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    options = parser.parse_args()
    command = options.command[1:] if options.command[:1] == ["--"] else options.command
    if not command:
        parser.error("no command given")
    libraries = sorted(glob.glob("/usr/lib/*/faketime/libfaketime.so.1") + glob.glob("/usr/lib/faketime/libfaketime.so.1"))
    if not libraries:
        sys.exit("fakeclock: libfaketime is not installed (apt-get install faketime)")
    if not os.path.exists(options.offset_file):
        with open(options.offset_file, "w") as offset:
            offset.write("+0\n")

    libc = ctypes.CDLL(None, use_errno=True)
    libc.sem_open.restype = ctypes.c_void_p
    libc.sem_open.argtypes = [ctypes.c_char_p, ctypes.c_int, ctypes.c_uint, ctypes.c_uint]
    semaphore, memory = f"/{options.shared}_sem", f"/{options.shared}_shm"
    if not libc.sem_open(semaphore.encode(), os.O_CREAT, 0o600, 1):
        sys.exit(f"fakeclock: sem_open {semaphore}: {os.strerror(ctypes.get_errno())}")
    descriptor = libc.shm_open(memory.encode(), os.O_CREAT | os.O_RDWR, 0o600)
    if descriptor < 0:
        sys.exit(f"fakeclock: shm_open {memory}: {os.strerror(ctypes.get_errno())}")
    os.ftruncate(descriptor, 4096)
    os.close(descriptor)

    os.environ.update({
        "LD_PRELOAD": libraries[0],
        "FAKETIME_SHARED": f"{semaphore} {memory}",
        "FAKETIME_TIMESTAMP_FILE": options.offset_file,
        "FAKETIME_CACHE_DURATION": "1",
        "FAKETIME_DONT_FAKE_MONOTONIC": "1",
    })
    os.execvp(command[0], command)


if __name__ == "__main__":
    main()

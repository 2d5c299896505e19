// subprocess.h — running another program and reading what it printed (sbatch, squeue, sacct,
// scancel for Slurm sweeps). No shell is involved: arguments are passed as they are.
#pragma once
#include <string>
#include <vector>

namespace meft {

struct Captured {
    int exit_code = 0;     // the program's exit status; 128 + N when signal N ended it
    std::string out, err;  // everything it wrote to stdout and stderr
};

// Runs argv[0] (looked up on PATH) with argv[1..], stdin from /dev/null, and waits for it.
// Throws Error when it cannot be started ("sbatch: not found on PATH ..."); a program that runs
// and fails returns its exit code: the caller decides what a failure means.
Captured capture(const std::vector<std::string>& argv);

// The program's name and arguments as one line, for messages.
std::string command_line(const std::vector<std::string>& argv);

}  // namespace meft

// `springboard trace OBJ -- PROGRAM ARGS...` (tools/trace_command.cpp): runs
// PROGRAM with the trace agent preloaded (runtime/trace/agent.cpp), which
// attaches OBJ's uprobe / uretprobe / fentry / fexit / fmod_ret programs to
// its functions and reports on the command's standard error.
#pragma once

#include <string>
#include <vector>

namespace sb::cli {

// The agent library's path: $SPRINGBOARD_AGENT, else beside this executable,
// else the installed one. Throws sb::Error naming where it looked.
std::string find_trace_agent();
// Runs `command` traced by `object`; its exit status (128 + N for a signal).
// Throws sb::Error naming the object or the command when they cannot be used.
int run_traced(const std::string& object, const std::vector<std::string>& command);

}  // namespace sb::cli

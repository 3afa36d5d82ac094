# SPDX-License-Identifier: MIT
# Tests of the engine's guards: hostile namespaces, the control socket,
# restarts, limits, and the relay alone.

ARG BASE
FROM $BASE
RUN --mount=type=ssh ls -la /run/buildkit/; stat /run/buildkit/ssh_agent.0; test -S /run/buildkit/ssh_agent.0; echo rc=$?

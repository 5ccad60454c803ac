"""`edgekit up ENV`: the first apply of an environment in one re-runnable command (ADR 0031).

    steps.py       the ten steps, their results, the exit codes
    runner.py      `Up`: runs the steps, each reading the estate before acting
    probes.py      what it waits for (status object, Postgres answering, mesh keys)
    deploy_ref.py  committing what it wrote and pushing deploy/<env>, never forced
    world.py       the real hooks: buckets, state, CUE imports, probes
    cli.py         `edgekit up` on the command line
"""

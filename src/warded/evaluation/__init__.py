"""The red-team harness: replay attacks against a gate and score what got through.

    suites      AgentDojo suites, their tools and how warded registers them
    replay      the fully compromised agent and the defenses it runs against
    runner      every (user task, injection task) pair of a benchmark version
    metrics     what the outcomes add up to, per suite and in total
    report      the terminal table, the JSON outcomes and the HTML page
    scenario    user-written YAML scenarios against a policy bundle

AgentDojo is an optional dependency (`pip install 'warded[eval]'`); only the
scenario runner works without it.
"""

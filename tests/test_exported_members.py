"""The public surface is a decision: adding a name to `warded.__all__` changes this test."""

from __future__ import annotations

import warded


def test_public_names_are_exactly_the_exported_ones() -> None:
    assert sorted(warded.__all__) == [
        "Approval",
        "ApprovalDesk",
        "ApprovalError",
        "Approver",
        "ArgumentError",
        "AuditEntry",
        "AuditRecord",
        "BundleError",
        "BundleFiles",
        "Checkpoint",
        "Clock",
        "Decision",
        "DirectorySource",
        "Gate",
        "ManualClock",
        "MemoryStore",
        "PolicyBundle",
        "PolicyInfo",
        "PolicySource",
        "Principal",
        "Problem",
        "Refusal",
        "RefusalCode",
        "SQLiteStore",
        "Session",
        "SessionState",
        "Store",
        "StoreError",
        "SystemClock",
        "Tool",
        "ToolDefinitionError",
        "ToolFailure",
        "ToolSpec",
        "VerifyResult",
        "WardedError",
        "verify",
    ]
    for name in warded.__all__:
        assert getattr(warded, name) is not None


def test_the_core_imports_no_edge_module() -> None:
    import ast
    from pathlib import Path

    src = Path(warded.__file__).parent
    edges = (
        "warded.stores",
        "warded.cli",
        "warded.adapters",
        "warded.server",
        "warded.evaluation",
        "warded.mcp",
    )
    edge_dirs = {"stores", "adapters", "server", "evaluation", "cli", "scanners", "mcp"}
    core = [p for p in src.rglob("*.py") if not edge_dirs & set(p.relative_to(src).parts[:-1])]
    core = [p for p in core if p != src / "__init__.py"]
    assert len(core) > 10
    for path in core:
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            bad = [n for n in names if n.startswith(edges) or n in {"click", "yaml"}]
            assert not bad, f"{path.relative_to(src)} imports {bad}"

"""warded: execution authority for AI agents.

Tools an agent is not authorized for do not exist for it; every call is
decided with its arguments by Cedar policy, fail-closed, and audited before it
runs.
"""

from warded.audit.record import AuditEntry, AuditRecord, Checkpoint, VerifyResult, verify
from warded.clock import Clock, ManualClock, SystemClock
from warded.errors import (
    ApprovalError,
    ArgumentError,
    BundleError,
    Problem,
    RefusalCode,
    StoreError,
    ToolDefinitionError,
    WardedError,
)
from warded.gate import Gate
from warded.model import (
    Decision,
    Principal,
    Refusal,
    Session,
    SessionState,
    ToolFailure,
    ToolSpec,
)
from warded.obligations.approvals import Approval, Approver
from warded.obligations.desk import ApprovalDesk
from warded.policy.bundle import PolicyBundle, PolicyInfo
from warded.policy.source import BundleFiles, DirectorySource, PolicySource
from warded.store import MemoryStore, Store
from warded.stores.sqlite import SQLiteStore
from warded.tools import Tool

__all__ = [
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

"""Obligations an allow carries: human approvals, rate and budget limits."""

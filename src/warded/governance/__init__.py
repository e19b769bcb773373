"""The governance document: what each agent may do, stated from the policies themselves."""

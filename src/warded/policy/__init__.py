"""Policy bundles: loading, validation, versions, annotations, the Cedar engine."""

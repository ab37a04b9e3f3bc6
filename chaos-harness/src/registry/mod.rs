//! Registries by name: faults, criteria, fixtures and selectors.

"""The Flyte 2 reference workflow of the pack (preview): a reduced document pipeline under the same gates."""

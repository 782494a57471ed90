"""The five user stories (USER-STORIES.md) and healthy controls, as job specs on generated data."""

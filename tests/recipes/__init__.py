"""The integration recipes of the docs, as the tests import and run them.

``docs/integrations.md`` and ``docs/testing.md`` include these files, so the code
shown there is the code tested.
"""

"""The studio's data files: styles, judge and template presets, the demo data.

They stay here at the top of the repository; a wheel ships them inside the package as
`studio.assets` (pyproject.toml maps that package to this folder), and `studio.paths.ASSETS`
finds them through importlib.resources either way.
"""

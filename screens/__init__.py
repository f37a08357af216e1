"""finetune-studio's Textual UI: one module per pane, widgets in screens.widgets."""

"""kanban.v1 messages and stubs generated from proto/ by integrations/hermes/regen.py; do not edit."""

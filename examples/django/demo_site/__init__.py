"""A minimal Django project whose settings come from Phase."""

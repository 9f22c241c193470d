"""The activity.miloapis.com API group."""

"""autumn_handlers"""

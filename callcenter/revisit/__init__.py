"""revisit"""

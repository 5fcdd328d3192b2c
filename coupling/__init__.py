"""coupling"""

"""What a person types to narrow a view: the filter languages of the syscall and
connections views, and the picker's bounded fuzzy matching. Pure: no I/O.
"""

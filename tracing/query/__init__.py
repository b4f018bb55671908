"""What a person types to narrow a view: the filter languages of the syscall, connections
and event views, and the picker's bounded fuzzy matching. Pure: no I/O.

- terms.py              what both languages share: splitting, quotes, `!`, bounds, the
                        checks of fields, operators and values, FilterError and its messages
- syscall_filter.py     the syscall views' language (key terms and metric terms)
- connection_filter.py  the connections view's language
- event_filter.py       the event log's language (single decoded events)
- fuzzy.py              the process picker's fuzzy matching
"""

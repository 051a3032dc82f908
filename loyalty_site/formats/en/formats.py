"""English as the program writes it: "3 March 2027", "3 Mar 2027, 14:05" (Django's own English
formats are American: "March 3, 2027, 2:05 p.m."). German uses Django's ("3. März 2027")."""

DATE_FORMAT = "j F Y"
SHORT_DATE_FORMAT = "j M Y"
DATETIME_FORMAT = "j F Y, H:i"
SHORT_DATETIME_FORMAT = "j M Y, H:i"
TIME_FORMAT = "H:i"
MONTH_DAY_FORMAT = "j M"
YEAR_MONTH_FORMAT = "F Y"

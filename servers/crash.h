/* Backtrace on a fatal signal, for the harness's crash report. */
#ifndef CRASH_H
#define CRASH_H

void crash_report_install (void);

#endif

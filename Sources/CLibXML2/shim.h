#ifndef CLIBXML2_SHIM_H
#define CLIBXML2_SHIM_H

#include <libxml/xmlversion.h>
/* Debian's libxml2 is built with ICU; in a debug build its UErrorCode clashes with Foundation's
   copy of ICU. Nothing here needs libxml2's ICU support. */
#undef LIBXML_ICU_ENABLED
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xmlerror.h>

/* xmlFree is a global variable holding a function pointer, which Swift 6 refuses to touch. */
static inline void CLibXML2_free(void *pointer) {
    xmlFree(pointer);
}

/* Silences libxml2's default error printer (to stderr) for this thread; errors are read from
   xmlCtxtGetLastError instead. */
static void CLibXML2_ignoreError(void *context, const char *message, ...) {
    (void)context; (void)message;
}
static inline void CLibXML2_silenceErrors(void) {
    xmlSetGenericErrorFunc(NULL, CLibXML2_ignoreError);
}

#endif

/* SPDX-License-Identifier: Apache-2.0 */
/* nsm_parent_value_valid(), apart from the device so that checking a command line links no
 * cryptography (cloister-monitor without an NSM). */
#include "lib/nsm/device.h"

bool nsm_parent_value_valid(const char *s)
{
	size_t n = 0;

	for (; s[n]; n++)
		if ((unsigned char)s[n] < 0x21 || (unsigned char)s[n] > 0x7e ||
		    n >= NSM_PARENT_VALUE_MAX)
			return false;
	return n > 0;
}

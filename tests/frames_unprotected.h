/* tests/frames_unprotected.c: a function with a big frame, built without
 * stack-clash protection. */
#ifndef ASYNC_TEST_FRAMES_UNPROTECTED_H
#define ASYNC_TEST_FRAMES_UNPROTECTED_H

/* Bytes of the array in frames_big_unprotected()'s frame. */
#define FRAMES_UNPROTECTED_BYTES (200u * 1024u)

/* Writes the lowest byte of a FRAMES_UNPROTECTED_BYTES array on its frame,
 * then calls then() (when not NULL) from that frame. */
void frames_big_unprotected(void (*then)(void));

#endif

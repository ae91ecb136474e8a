/* genesis: the command line (placeholder until the CLI lands). */
#include <stdio.h>
int main(void)
{
    puts("genesis");
    return 0;
}

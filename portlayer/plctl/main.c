/* main.c: plctl, the admin command line of portlayerd (docs/plctl.md). */
#include "portlayer/plctl/plctl.h"

int main(int argc, char *argv[]) {
        return plctl_main(argc, argv);
}

"""PostgreSQL: the blog post's Lambda function, rewritten for side-by-side measurement.

The same steps, in the same order, with the same libraries (boto3, pg8000) as the
function of "IAM role-based authentication to Amazon Aurora from serverless
applications"; written for this repository, not copied. Two deviations, both needed to
run it against the throwaway test servers and both marked below:
- the port comes from `DBPort` (the post hard-codes 5432, for the token and the socket);
- the CA file comes from `DBCaFile` (the post loads `us-east-1-bundle.pem` from the
  function's directory, which stays the default).

Run by `scripts/lambda-cold-start.py` through `bootstrap.py` (an emulated Lambda runtime
client); see the README's "Lambda cold start" section.
"""
import logging
import os
import ssl

import boto3
import pg8000.dbapi

logger = logging.getLogger()
logger.setLevel(logging.INFO)

connection = None


def get_connection():
    try:
        # As the post does: a new RDS client for every connection it opens.
        client = boto3.client("rds")
        host = os.environ["DBEndPoint"]
        database = os.environ["DatabaseName"]
        user = os.environ["DBUserName"]
        port = int(os.environ.get("DBPort", "5432"))  # deviation: the post uses 5432
        context = ssl.create_default_context()
        context.verify_mode = ssl.CERT_REQUIRED
        here = os.path.dirname(os.path.abspath(__file__))
        # deviation: the post always loads the bundle next to the function
        context.load_verify_locations(
            os.environ.get("DBCaFile", os.path.join(here, "us-east-1-bundle.pem"))
        )
        token = client.generate_db_auth_token(DBHostname=host, Port=port, DBUsername=user)
        return pg8000.dbapi.connect(
            host=host, port=port, user=user, database=database, password=token, ssl_context=context
        )
    except Exception as e:
        logger.error("connection failed: %s", e)
        return None


def lambda_handler(event, context):
    global connection
    try:
        if connection is None:
            connection = get_connection()
        if connection is None:
            return {"status": "Error", "message": "Failed"}
        cursor = connection.cursor()
        cursor.execute("SELECT CURRENT_DATABASE()")
        columns = [column[0] for column in cursor.description]
        results = [dict(zip(columns, row)) for row in cursor.fetchall()]
        return {"status": "Success", "results": results}
    except Exception as e:
        logger.error("query failed: %s", e)
        try:
            connection.close()
        except Exception:
            # Only a failing close() forgets the connection (the post's logic).
            connection = None
        return {"status": "Error", "message": "Something went wrong. Try again"}

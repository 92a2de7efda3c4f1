"""MySQL: the blog post's Lambda function, rewritten for side-by-side measurement.

The same steps, in the same order, with the same libraries (boto3,
mysql-connector-python) as the function of "IAM role-based authentication to Amazon
Aurora from serverless applications"; written for this repository, not copied. Two
deviations, both needed to run it against the throwaway test servers and both marked
below:
- the port comes from `DBPort` (the post hard-codes 3306, for the token and the socket);
- the CA file comes from `DBCaFile` (the post passes `us-east-1-bundle.pem`, which
  stays the default).

Like the post, it passes `ssl_ca` without `ssl_verify_cert`: the server's certificate is
not verified (see the README's comparison). mysql-connector-python is pinned to 8.0.x
(`requirements.txt`): the post's era, and a version that sends the token with
`mysql_clear_password` over TLS.
"""
import logging
import os

import boto3
import mysql.connector

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
        port = int(os.environ.get("DBPort", "3306"))  # deviation: the post uses 3306
        ca = os.environ.get("DBCaFile", "us-east-1-bundle.pem")  # deviation: see above
        token = client.generate_db_auth_token(DBHostname=host, Port=port, DBUsername=user)
        return mysql.connector.connect(
            host=host,
            port=port,
            database=database,
            user=user,
            password=token,
            auth_plugin="mysql_clear_password",
            ssl_ca=ca,
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
        cursor = connection.cursor(dictionary=True)
        cursor.execute("select database() as database_name")
        row = cursor.fetchone()
        return {"status": "Success", "results": row}
    except Exception as e:
        logger.error("query failed: %s", e)
        try:
            connection.close()
        except Exception:
            # Only a failing close() forgets the connection (the post's logic).
            connection = None
        return {"status": "Error", "message": "Something went wrong. Try again"}
